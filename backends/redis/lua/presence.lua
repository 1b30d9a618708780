-- KEYS: the room's presence hash
-- ARGV: this process, its share ('' for none), ttl (ms), the room's channel, '1' to tell others
-- Drops expired fields (other processes that stopped refreshing) and records this process's share;
-- tells the room's other processes when something changed ('?<origin>', backends.redis.channel). Times
-- are Redis's own clock, which every process shares. Returns {expired fields dropped, shares...}.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local ttl = tonumber(ARGV[3])
local fields = redis.call('HGETALL', KEYS[1])
local shares, dropped = {}, 0
for i = 1, #fields, 2 do
  if fields[i] ~= ARGV[1] then
    local value = fields[i + 1]
    local space = string.find(value, ' ', 1, true)
    if tonumber(string.sub(value, 1, space - 1)) <= now then
      redis.call('HDEL', KEYS[1], fields[i])
      dropped = dropped + 1
    else
      shares[#shares + 1] = string.sub(value, space + 1)
    end
  end
end
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], (now + ttl) .. ' ' .. ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ttl)
  shares[#shares + 1] = ARGV[2]
end
if ARGV[5] == '1' or dropped > 0 then
  redis.call('SPUBLISH', ARGV[4], '?' .. ARGV[1])
end
return {dropped, unpack(shares)}
