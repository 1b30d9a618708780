-- Stores and publishes one message in a single atomic step, so every process sees the stream's order.
-- It touches the room's keys only (one cluster slot); the sender's quota is settled around it by
-- quota.lua, and the deployment's figures (busiest rooms, active rooms, counters) after it.
--
-- KEYS: stream, dedup key, the room's deleted set, the room's epoch, the room's newest pruned id, the
--       room's changes, the room's messages as they now stand (see log.lua)
-- ARGV: handle, message, timestamp, client id ('' for none), attempt token, dedup seconds,
--       retain (0 keeps all), trim chunk (how many past retain are trimmed at once), channel, the sender's
--       quota verdict ('' for no quota, '0' over, '1' no new room, '2' ok), user ('' for none),
--       moderator ('1'; '' for not), reply to ('' for none), author ('' for none)
--
-- The entry's fields: h (handle), m (message), t (timestamp), and only when set c (client id), u (user),
-- mod ('1'), re (the id it replies to) and a (its author), so that an entry without them reads as before.
-- The message is published on the room's channel as a JSON array (backends.redis.channel): [id, handle,
-- message, timestamp, client id ('' for none)], which gains [..., user ('' for none), moderator (a
-- boolean)] only when the message has either or made the stream or replies or has an author, then
-- [..., epoch] when it made the stream (null when it did not, but replies or has an author), then
-- [..., reply to ('' for none), author ('' for none)] when it replies or has an author.
--
-- Retention trims the stream's head once it holds a chunk more than it keeps, and records the id of the
-- newest entry it trimmed first (RedisKeys.pruned), in the same step: a replay tells from it whether a
-- client missed anything. (XADD's MAXLEN trims without saying what went, and XINFO's max-deleted-entry-id
-- follows XDEL only.) The trimmed messages' changes go with them: their state as they stood, and the
-- changes made before the newest trimmed (later changes to them are passed by on reading, and trimmed once
-- the head moves past them).
--
-- The room's epoch is set to the attempt token of the store that makes its stream (or finds the epoch
-- missing; see RedisKeys.room_epoch), and the message that made the stream carries it, last.
-- The dedup key is the client id's key, or for a message without one a short-lived key of this call's
-- attempt token. Either way a retry of the same call (the reply was lost, redis-py sent it again) finds
-- its own earlier store instead of storing twice. Its value is "<id> <attempt token>": a hit from
-- another attempt is a client's resend (status 1), a hit from this attempt is our own retry (status 2).
-- A hit on a message a moderator deleted stores nothing (status 5); on one pruned, the message is new.
-- The quota verdict counts after the dedup key, so a resend is always answered: status 3, over its
-- messages; status 4, over its new rooms (nothing stored).
-- A reply to a message the room does not hold stores nothing (status 6).
-- Returns {0, id, 1 if the message made the room, else 0} for a new message, {status, id, fields, the
-- message as it now stands (false for as stored)} for one stored before.
local existing = redis.call('GET', KEYS[2])
if existing then
  local space = string.find(existing, ' ', 1, true)
  local earlier = string.sub(existing, 1, space - 1)
  local entries = redis.call('XRANGE', KEYS[1], earlier, earlier)
  if #entries == 1 then
    if string.sub(existing, space + 1) == ARGV[5] then
      return {2, earlier, entries[1][2], redis.call('HGET', KEYS[7], earlier)}
    end
    return {1, earlier, entries[1][2], redis.call('HGET', KEYS[7], earlier)}
  end
  if redis.call('ZSCORE', KEYS[3], earlier) then return {5} end
end
local reply_to, author = ARGV[13], ARGV[14]
if reply_to ~= '' and #redis.call('XRANGE', KEYS[1], reply_to, reply_to) == 0 then return {6} end
local new_room = redis.call('EXISTS', KEYS[1]) == 0
if ARGV[10] == '0' then return {3} end
if ARGV[10] == '1' and new_room then return {4} end
local user, moderator = ARGV[11], ARGV[12]
local fields = {'h', ARGV[1], 'm', ARGV[2], 't', ARGV[3]}
if ARGV[4] ~= '' then
  fields[#fields + 1] = 'c'
  fields[#fields + 1] = ARGV[4]
end
if user ~= '' then
  fields[#fields + 1] = 'u'
  fields[#fields + 1] = user
end
if moderator ~= '' then
  fields[#fields + 1] = 'mod'
  fields[#fields + 1] = '1'
end
if reply_to ~= '' then
  fields[#fields + 1] = 're'
  fields[#fields + 1] = reply_to
end
if author ~= '' then
  fields[#fields + 1] = 'a'
  fields[#fields + 1] = author
end
local id = redis.call('XADD', KEYS[1], '*', unpack(fields))
local retain = tonumber(ARGV[7])
if retain > 0 then
  local excess = redis.call('XLEN', KEYS[1]) - retain
  if excess >= tonumber(ARGV[8]) then
    local trimmed = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)
    local newest = trimmed[#trimmed][1]
    redis.call('SET', KEYS[5], newest)
    redis.call('XTRIM', KEYS[1], 'MAXLEN', retain)
    redis.call('XTRIM', KEYS[6], 'MINID', newest)
    if redis.call('EXISTS', KEYS[7]) == 1 then
      for first = 1, #trimmed, 500 do
        local states = {}
        for i = first, math.min(first + 499, #trimmed) do
          states[#states + 1] = trimmed[i][1]
          states[#states + 1] = trimmed[i][1] .. ':who'
        end
        redis.call('HDEL', KEYS[7], unpack(states))
      end
    end
  end
end
redis.call('SET', KEYS[2], id .. ' ' .. ARGV[5], 'EX', ARGV[6])
local published = {id, ARGV[1], ARGV[2], ARGV[3], ARGV[4]}
local logged = reply_to ~= '' or author ~= ''
if user ~= '' or moderator ~= '' or new_room or logged then
  published[6] = user
  published[7] = moderator ~= ''
end
if new_room then
  redis.call('SET', KEYS[4], ARGV[5])
  redis.call('DEL', KEYS[5], KEYS[6], KEYS[7])  -- of a stream lost (or removed) before this one
  published[8] = ARGV[5]
else
  redis.call('SET', KEYS[4], ARGV[5], 'NX')
  if logged then published[8] = cjson.null end
end
if logged then
  published[9] = reply_to
  published[10] = author
end
redis.call('SPUBLISH', ARGV[9], cjson.encode(published))
if new_room then return {0, id, 1} end
return {0, id, 0}
