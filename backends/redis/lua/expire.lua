-- Removes one idle room's keys if nothing was stored since its newest message was read: a message
-- stored meanwhile keeps it. The busiest and active sets, in other slots, are updated after it.
-- KEYS: stream, deleted set, epoch, newest pruned id, changes, messages as they now stand. ARGV: the last
-- id the stream had issued when read ('' for no stream). Returns 1 if removed.
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' and info[i + 1] ~= ARGV[1] then return 0 end
  end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
return 1
