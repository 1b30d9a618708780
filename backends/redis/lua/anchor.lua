-- Where a room's delivery starts, asked for on the pub/sub connection right behind its SSUBSCRIBE (see
-- backends.redis.session): the last id the stream ever issued (not its newest entry, which is older when
-- the newest was deleted), how many of its messages were deleted so far, and the room's epoch.
-- KEYS: stream, deleted set, epoch. Returns {last id ('' for none), deletions, epoch ('' for none)}.
local deletions = redis.call('ZCARD', KEYS[2])
local epoch = redis.call('GET', KEYS[3]) or ''
if redis.call('EXISTS', KEYS[1]) == 0 then return {'', deletions, epoch} end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then return {info[i + 1], deletions, epoch} end
end
return {'', deletions, epoch}
