-- KEYS: the audit stream, its id counter. ARGV: how many entries to keep, the entry's json. Returns
-- {id, Redis's clock in microseconds}. The id is the counter's next value, as the stream entry's
-- '<id>-0', so ids are whole numbers and a page before one is a range of the stream.
local id = redis.call('INCR', KEYS[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local at = string.format('%.0f', now)
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], id .. '-0', 'at', at, 'entry', ARGV[2])
return {id, at}
