-- (after live_bans.lua) KEYS: bans, ban ids. ARGV: seconds ('' until lifted), the ban's json, the
-- moderation channel. Returns {id, value}.
local id = redis.call('INCR', KEYS[2])
local expires = '-'
if ARGV[1] ~= '' then expires = string.format('%.0f', now + math.floor(tonumber(ARGV[1]) * 1000000)) end
local value = string.format('%.0f', now) .. ' ' .. expires .. ' ' .. ARGV[2]
redis.call('HSET', KEYS[1], id, value)
redis.call('PUBLISH', ARGV[3], 'bans')
return {id, value}
