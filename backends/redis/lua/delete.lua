-- (after log.lua) Deletes a message, a moderator's or its author's. KEYS[4]: the room's deleted set.
-- ARGV: message id, channel, 'author' then the authors allowed ('moderator': anyone's). Returns {0} for no
-- such message, {1} for not its author, {2, at} once deleted. (The room's count among the busiest is
-- lowered after it, outside the room's slot.)
local fields = message_fields()
if not fields then return {0} end
if ARGV[3] == 'author' then
  local allowed = false
  for i = 4, #ARGV do
    if fields['a'] == ARGV[i] then allowed = true end
  end
  if not allowed then return {1} end
end
redis.call('XDEL', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[4], redis.call('ZCARD', KEYS[4]) + 1, ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1], ARGV[1] .. ':who')
return {2, log_change('delete', '', '', {})}
