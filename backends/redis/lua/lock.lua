-- KEYS: locked set. ARGV: room, '1' to lock ('' to unlock), the moderation channel. Returns 1 if changed.
local changed
if ARGV[2] == '1' then
  changed = redis.call('SADD', KEYS[1], ARGV[1])
else
  changed = redis.call('SREM', KEYS[1], ARGV[1])
end
if changed == 1 then redis.call('PUBLISH', ARGV[3], 'locks') end
return changed
