-- The start of every ban script (add_ban, bans, lift_ban): Redis's clock in microseconds, and the bans
-- in force (expired ones deleted on the way) as {id, value, id, value...}. KEYS[1] is the bans hash.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local fields = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #fields, 2 do
  local expires = string.match(fields[i + 1], '^%d+ (%S+) ')
  if expires ~= '-' and tonumber(expires) <= now then
    redis.call('HDEL', KEYS[1], fields[i])
  else
    live[#live + 1] = fields[i]
    live[#live + 1] = fields[i + 1]
  end
end
