-- Where a room's delivery starts, asked for on the pub/sub connection right behind its SSUBSCRIBE (see
-- backends.redis.session): the last id the stream ever issued (not its newest entry, which is older when
-- the newest was deleted or changes were made since), and the room's epoch.
-- KEYS: stream, epoch. Returns {last id ('' for none), epoch ('' for none)}.
local epoch = redis.call('GET', KEYS[2]) or ''
if redis.call('EXISTS', KEYS[1]) == 0 then return {'', epoch} end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then return {info[i + 1], epoch} end
end
return {'', epoch}
