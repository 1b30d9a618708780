-- (after log.lua) Edits a message as its author. ARGV: message id, channel, new text, edited, then the
-- authors allowed. Returns {0} for no such message, {1} for not its author, {2, at} once edited.
local fields = message_fields()
if not fields then return {0} end
local allowed = false
for i = 5, #ARGV do
  if fields['a'] == ARGV[i] then allowed = true end
end
if not allowed then return {1} end
local state = state_of()
state['m'], state['e'] = ARGV[3], ARGV[4]
redis.call('HSET', KEYS[3], ARGV[1], cjson.encode(state))
return {2, log_change('edit', ARGV[3], ARGV[4], {})}
