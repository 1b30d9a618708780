-- (after live_bans.lua) KEYS: bans. Returns the bans in force.
return live
