local now = math.floor(server_ms() * 1000 + 0.5)
local tat = redis.call('INCRBY', KEYS[1], step)
local before = tat - interval
local out
if before >= now then
  local debt = tat - now
  if debt <= span then
    if tat % span < interval then redis.call('PEXPIRE', KEYS[1], ttl) end
    out = debt
  else
    redis.call('DECRBY', KEYS[1], step)
    if block > 0 then
      -- The block replaces the count: once it ends, the subject starts afresh.
      redis.call('SET', KEYS[1], -(now + block * 1000), 'PX', block)
      out = {0, 0, block, block, 1}
    else
      out = {0, 0, math.max(1, math.ceil((debt - span) / 1000)), math.ceil((before - now) / 1000), 0}
    end
  end
elseif -before > now then
  redis.call('DECRBY', KEYS[1], step)
  local left = math.ceil((-before - now) / 1000)
  out = {0, 0, left, left, 1}
else
  if before > 0 then
    redis.call('INCRBY', KEYS[1], string.format('%d', now - before))
    if math.floor((now + interval) / span) ~= math.floor(before / span) then redis.call('PEXPIRE', KEYS[1], ttl) end
  else
    redis.call('SET', KEYS[1], string.format('%d', now + interval), 'PX', ttl)
  end
  out = interval
end
