-- A sender's token buckets (messages, and new rooms when limited) in each block of addresses it counts
-- in (AddressBlocks: an IPv4 address; an IPv6 /64, /56 and /48), on Redis's clock so that every
-- process agrees. Before a batch is stored, 'take' spends a message token of every block if each has
-- one, and tells whether a new room would be allowed in every block (a verdict for store.lua);
-- after it, 'refund' gives back the tokens of a message not stored, and 'room' spends a new-room token
-- of every block for a room the message made. The new-room limit is thus checked before and charged
-- after: messages of one address making rooms at the same moment on several processes can pass it by
-- as many as are in flight.
--
-- KEYS: per block, its message bucket then its new-room bucket (all in one slot: see RedisKeys.sent_by)
-- ARGV: 'take', 'refund' or 'room'; messages per second; burst; new rooms per hour (0: no limit); then
--       per block, the factor of one address's allowance it may use
-- Returns for 'take' a verdict ('0' over, '1' no new room, '2' ok), else nothing.
local function level(key, rate, burst, now)
  local state = redis.call('HMGET', key, 't', 'u')
  local tokens = tonumber(state[1])
  if not tokens then return burst end
  return math.min(burst, tokens + (now - tonumber(state[2])) * rate)
end
local function keep(key, tokens, rate, burst, now)
  redis.call('HSET', key, 't', tostring(tokens), 'u', tostring(now))
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local rate, burst, rooms = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local blocks = #KEYS / 2
local function factor(block) return tonumber(ARGV[4 + block]) end
if ARGV[1] == 'take' then
  local levels = {}
  for block = 1, blocks do
    local f = factor(block)
    levels[block] = level(KEYS[2 * block - 1], rate * f, burst * f, now)
    if levels[block] < 1 then return '0' end
  end
  for block = 1, blocks do
    local f = factor(block)
    keep(KEYS[2 * block - 1], levels[block] - 1, rate * f, burst * f, now)
  end
  if rooms > 0 then
    for block = 1, blocks do
      local f = factor(block)
      if level(KEYS[2 * block], rooms * f / 3600, rooms * f, now) < 1 then return '1' end
    end
  end
  return '2'
elseif ARGV[1] == 'refund' then
  for block = 1, blocks do
    local f = factor(block)
    local key = KEYS[2 * block - 1]
    keep(key, math.min(burst * f, level(key, rate * f, burst * f, now) + 1), rate * f, burst * f, now)
  end
elseif rooms > 0 then
  for block = 1, blocks do
    local f = factor(block)
    local key = KEYS[2 * block]
    keep(key, level(key, rooms * f / 3600, rooms * f, now) - 1, rooms * f / 3600, rooms * f, now)
  end
end
return false
