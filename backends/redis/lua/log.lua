-- The start of every script that changes a message (edit, react, delete_message): finding the message,
-- giving a change the room's next position, and keeping it in the room's log.
-- KEYS[1] the room's stream, KEYS[2] its changes (a stream whose entry ids are the changes' positions),
-- KEYS[3] its messages as they now stand (a hash: '<id>' -> {m, e, r: [[emoji, count]...]} as JSON, and
-- '<id>:who' -> [[emoji, [reactor...]]...] as JSON). ARGV[1] is the message id, ARGV[2] the room's channel.
local function message_fields()
  local entries = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
  if #entries == 0 then return nil end
  local flat, fields = entries[1][2], {}
  for i = 1, #flat, 2 do fields[flat[i]] = flat[i + 1] end
  return fields
end

local function state_of()
  local stored = redis.call('HGET', KEYS[3], ARGV[1])
  if stored then return cjson.decode(stored) end
  return {}
end

-- The room's next position: past the last id its stream ever issued, on Redis's clock as XADD's own ids
-- are, and issued by the stream itself (XSETID), so that the next message's id lies past it.
local function next_position()
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  local last = '0-0'
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then last = info[i + 1] end
  end
  local dash = string.find(last, '-', 1, true)
  local ms, seq = tonumber(string.sub(last, 1, dash - 1)), tonumber(string.sub(last, dash + 1))
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  local at
  if now > ms then
    at = string.format('%.0f-0', now)
  else
    at = string.format('%.0f-%.0f', ms, seq + 1)
  end
  redis.call('XSETID', KEYS[1], at)
  return at
end

-- Keeps a change in the room's log and tells the room ('~' and the change as JSON, backends.redis.channel):
-- [at, id, kind, text ('' for none), edited ('' for none), [[emoji, count]...]].
local function log_change(kind, text, edited, counts)
  local at = next_position()
  local fields = {'i', ARGV[1], 'k', kind}
  if kind == 'edit' then
    fields[5], fields[6], fields[7], fields[8] = 'm', text, 'e', edited
  elseif kind == 'reactions' then
    fields[5], fields[6] = 'r', cjson.encode(counts)
  end
  redis.call('XADD', KEYS[2], at, unpack(fields))
  redis.call('SPUBLISH', ARGV[2], '~' .. cjson.encode({at, ARGV[1], kind, text, edited, counts}))
  return at
end
