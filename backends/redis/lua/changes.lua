-- The changes kept after a position, less those gone with their message's deletion: of a deleted message,
-- its deletion only. KEYS: the room's changes, its deleted set. ARGV: where to start, as XRANGE takes it.
-- Returns the entries as XRANGE answers them (each one's fields start with i, the message, and k, the kind:
-- see log.lua).
local kept = {}
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], ARGV[1], '+')) do
  local fields = entry[2]
  if fields[4] == 'delete' or not redis.call('ZSCORE', KEYS[2], fields[2]) then kept[#kept + 1] = entry end
end
return kept
