// RedisQueryset: each operation is one Lua script (EVAL runs atomically), so
// a record and the index never disagree. A record is a hash PREFIX:ID whose
// "id" field is always there (a record of nulls is still a record); null
// fields are left out of the hash.
#include <stdexcept>

#include "brubeck/apps/autoapi.hpp"
#include "brubeck/drivers/redis.hpp"

namespace brubeck {

namespace {

// KEYS[1] prefix; ARGV: per record its field count, then field, value...
constexpr const char* kCreate = R"lua(
local p, i, ids = KEYS[1], 1, {}
while i <= #ARGV do
  local id = redis.call('INCR', p .. ':next')
  local n = tonumber(ARGV[i])
  local args = {'id', id}
  for k = i + 1, i + 2 * n do args[#args + 1] = ARGV[k] end
  redis.call('HSET', p .. ':' .. id, unpack(args))
  redis.call('ZADD', p .. ':ids', id, id)
  ids[#ids + 1] = id
  i = i + 1 + 2 * n
end
return ids
)lua";

// KEYS[1] prefix; ARGV ids. An unknown id gives an empty list.
constexpr const char* kRead = R"lua(
local out = {}
for k, id in ipairs(ARGV) do out[k] = redis.call('HGETALL', KEYS[1] .. ':' .. id) end
return out
)lua";

// KEYS[1] prefix; ARGV offset, limit. Returns {total, {record...}}.
constexpr const char* kPage = R"lua(
local p = KEYS[1]
local first = tonumber(ARGV[1])
local ids = redis.call('ZRANGE', p .. ':ids', first, first + tonumber(ARGV[2]) - 1)
local out = {}
for k, id in ipairs(ids) do out[k] = redis.call('HGETALL', p .. ':' .. id) end
return {redis.call('ZCARD', p .. ':ids'), out}
)lua";

// KEYS[1] the record; ARGV: count of fields to set, field, value..., then
// the fields to clear. Returns the record after, or nil.
constexpr const char* kUpdate = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local n = tonumber(ARGV[1])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 2, 1 + 2 * n)) end
if #ARGV > 1 + 2 * n then redis.call('HDEL', KEYS[1], unpack(ARGV, 2 + 2 * n)) end
return redis.call('HGETALL', KEYS[1])
)lua";

// KEYS[1] prefix; ARGV ids. Removes them all and returns {}, or returns
// the unknown ones and removes nothing.
constexpr const char* kDestroy = R"lua(
local p, missing = KEYS[1], {}
for _, id in ipairs(ARGV) do
  if redis.call('EXISTS', p .. ':' .. id) == 0 then missing[#missing + 1] = id end
end
if #missing > 0 then return missing end
for _, id in ipairs(ARGV) do
  redis.call('DEL', p .. ':' .. id)
  redis.call('ZREM', p .. ':ids', id)
end
return {}
)lua";

// HGETALL's flat field, value list as a record, or nullopt when empty.
std::optional<Record> record_of(const Model& model, const RedisReply& hash) {
  if (!hash.is_array() || hash.elements.empty()) return std::nullopt;
  Record rec = Record::object();
  rec["id"] = nullptr;
  for (const auto& f : model.fields()) rec[f.name] = nullptr;
  for (std::size_t i = 0; i + 1 < hash.elements.size(); i += 2) {
    const auto& name = hash.elements[i].str;
    const auto& value = hash.elements[i + 1].str;
    if (name == "id")
      rec["id"] = Model::from_text(Field::integer("id"), value);
    else if (const Field* f = model.field(name))
      rec[name] = Model::from_text(*f, value);
  }
  return rec;
}

std::int64_t integer_of(const RedisReply& r) {
  if (r.is_integer()) return r.integer;
  return std::stoll(r.str);
}

}  // namespace

RedisQueryset::RedisQueryset(std::string host, std::uint16_t port, Model model, std::string prefix)
    : Queryset(std::move(model)),
      host_(std::move(host)),
      port_(port),
      prefix_(prefix.empty() ? "autoapi:" + this->model().name() : std::move(prefix)) {}

namespace {

RedisReply eval(const std::string& host, std::uint16_t port, const char* script,
                const std::string& key, std::vector<std::string> args) {
  std::vector<std::string> argv{"EVAL", script, "1", key};
  argv.insert(argv.end(), std::make_move_iterator(args.begin()),
              std::make_move_iterator(args.end()));
  return RedisClient::for_this_shard(host, port)->command(std::move(argv));
}

std::vector<std::string> id_texts(const std::vector<ItemId>& ids) {
  std::vector<std::string> out;
  for (ItemId id : ids) out.push_back(std::to_string(id));
  return out;
}

}  // namespace

std::vector<Record> RedisQueryset::create(const std::vector<Record>& records) {
  if (records.empty()) return {};
  std::vector<std::string> args;
  for (const auto& rec : records) {
    std::vector<std::string> pairs;
    for (const auto& f : model().fields()) {
      const auto& v = rec[f.name];
      if (v.is_null()) continue;
      pairs.push_back(f.name);
      pairs.push_back(Model::to_text(f, v));
    }
    args.push_back(std::to_string(pairs.size() / 2));
    args.insert(args.end(), pairs.begin(), pairs.end());
  }
  auto reply = eval(host_, port_, kCreate, prefix_, std::move(args));
  if (!reply.is_array() || reply.elements.size() != records.size())
    throw std::runtime_error("autoapi: unexpected reply from Redis to a create");
  std::vector<Record> out;
  for (std::size_t i = 0; i < records.size(); ++i) {
    Record rec = Record::object();
    rec["id"] = integer_of(reply.elements[i]);
    for (const auto& f : model().fields()) rec[f.name] = records[i][f.name];
    out.push_back(std::move(rec));
  }
  return out;
}

std::vector<std::optional<Record>> RedisQueryset::read(const std::vector<ItemId>& ids) {
  std::vector<std::optional<Record>> out(ids.size());
  if (ids.empty()) return out;
  auto reply = eval(host_, port_, kRead, prefix_, id_texts(ids));
  for (std::size_t i = 0; i < ids.size() && i < reply.elements.size(); ++i)
    out[i] = record_of(model(), reply.elements[i]);
  return out;
}

Page RedisQueryset::read_page(std::size_t offset, std::size_t limit) {
  Page page;
  if (limit == 0) return page;
  auto reply = eval(host_, port_, kPage, prefix_, {std::to_string(offset), std::to_string(limit)});
  if (!reply.is_array() || reply.elements.size() != 2)
    throw std::runtime_error("autoapi: unexpected reply from Redis to a listing");
  page.total = static_cast<std::size_t>(integer_of(reply.elements[0]));
  for (const auto& hash : reply.elements[1].elements)
    if (auto rec = record_of(model(), hash)) page.records.push_back(std::move(*rec));
  return page;
}

std::optional<Record> RedisQueryset::update(ItemId id, const Record& fields) {
  std::vector<std::string> set, clear;
  for (const auto& f : model().fields()) {
    auto it = fields.find(f.name);
    if (it == fields.end()) continue;
    if (it->is_null()) {
      clear.push_back(f.name);
    } else {
      set.push_back(f.name);
      set.push_back(Model::to_text(f, *it));
    }
  }
  std::vector<std::string> args{std::to_string(set.size() / 2)};
  args.insert(args.end(), set.begin(), set.end());
  args.insert(args.end(), clear.begin(), clear.end());
  return record_of(
      model(), eval(host_, port_, kUpdate, prefix_ + ":" + std::to_string(id), std::move(args)));
}

std::vector<ItemId> RedisQueryset::destroy(const std::vector<ItemId>& ids) {
  if (ids.empty()) return {};
  auto reply = eval(host_, port_, kDestroy, prefix_, id_texts(ids));
  std::vector<ItemId> missing;
  for (const auto& e : reply.elements) missing.push_back(integer_of(e));
  return missing;
}

}  // namespace brubeck
