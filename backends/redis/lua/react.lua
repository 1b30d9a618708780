-- (after log.lua) Adds or takes back one reactor's reaction. ARGV: message id, channel, reactor, emoji,
-- '1' to add ('' to take back), the most different emoji a message takes. Returns {0} for no such message,
-- {4} when nothing changed, {3} past the most emoji, {2, at, counts as JSON} once changed.
if not message_fields() then return {0} end
local reactor, emoji, on = ARGV[3], ARGV[4], ARGV[5] == '1'
local who_field = ARGV[1] .. ':who'
local stored = redis.call('HGET', KEYS[3], who_field)
local who = {}
if stored then who = cjson.decode(stored) end
local found
for i = 1, #who do
  if who[i][1] == emoji then found = i end
end
local function position_in(reactors)
  for i = 1, #reactors do
    if reactors[i] == reactor then return i end
  end
  return nil
end
if on then
  if not found then
    if #who >= tonumber(ARGV[6]) then return {3} end
    who[#who + 1] = {emoji, {reactor}}
  elseif position_in(who[found][2]) then
    return {4}
  else
    table.insert(who[found][2], reactor)
  end
else
  if not found then return {4} end
  local at = position_in(who[found][2])
  if not at then return {4} end
  table.remove(who[found][2], at)
  if #who[found][2] == 0 then table.remove(who, found) end
end
local counts = {}
for i = 1, #who do counts[i] = {who[i][1], #who[i][2]} end
local state = state_of()
state['r'] = counts
redis.call('HSET', KEYS[3], ARGV[1], cjson.encode(state))
if #who == 0 then
  redis.call('HDEL', KEYS[3], who_field)
else
  redis.call('HSET', KEYS[3], who_field, cjson.encode(who))
end
return {2, log_change('reactions', '', '', counts), cjson.encode(counts)}
