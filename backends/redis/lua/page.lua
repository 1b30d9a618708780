-- A page of a room's messages with what changed of them, in one step (one round trip for a reconnect).
-- KEYS: stream, the room's messages as they now stand (see log.lua). ARGV: 'after' (XRANGE) or 'before'
-- (XREVRANGE), the range's start and end as that command takes them, how many. Returns {entries as the
-- command answers them, each one's state as it now stands (false: as stored)}.
local entries
if ARGV[1] == 'after' then
  entries = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[3], 'COUNT', ARGV[4])
else
  entries = redis.call('XREVRANGE', KEYS[1], ARGV[2], ARGV[3], 'COUNT', ARGV[4])
end
local states = {}
for i = 1, #entries do states[i] = false end
if #entries > 0 and redis.call('EXISTS', KEYS[2]) == 1 then
  for first = 1, #entries, 500 do
    local ids = {}
    for i = first, math.min(first + 499, #entries) do ids[#ids + 1] = entries[i][1] end
    local found = redis.call('HMGET', KEYS[2], unpack(ids))
    for i = 1, #found do states[first + i - 1] = found[i] end
  end
end
return {entries, states}
