-- Deletes a message and tells the room ('-<n> <id>', backends.redis.channel).
-- KEYS: stream, deleted set. ARGV: message id, the room's channel. Returns 1 if deleted. (The room's
-- count among the busiest is lowered after it, outside the room's slot.)
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
local number = redis.call('ZCARD', KEYS[2]) + 1
redis.call('ZADD', KEYS[2], number, ARGV[1])
redis.call('SPUBLISH', ARGV[2], '-' .. number .. ' ' .. ARGV[1])
return 1
