-- (after live_bans.lua) KEYS: bans. ARGV: ban id, the moderation channel. Returns 1 if a ban in force
-- was lifted.
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('PUBLISH', ARGV[2], 'bans')
return 1
