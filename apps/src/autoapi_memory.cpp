// MemoryQueryset: a map behind a mutex. Every shard uses the same one; the
// lock is held for a copy of a few records, never across a wait.
#include <algorithm>

#include "brubeck/apps/autoapi.hpp"

namespace brubeck {

namespace {

// "id" first, then the fields in the model's order.
Record with_id(ItemId id, const Record& fields) {
  Record r = Record::object();
  r["id"] = id;
  for (const auto& [k, v] : fields.items()) r[k] = v;
  return r;
}

}  // namespace

std::vector<Record> MemoryQueryset::create(const std::vector<Record>& records) {
  std::vector<Record> out;
  out.reserve(records.size());
  std::lock_guard lock(mutex_);
  for (const auto& fields : records) {
    const ItemId id = ++last_id_;
    out.push_back(records_.emplace(id, with_id(id, fields)).first->second);
  }
  return out;
}

std::vector<std::optional<Record>> MemoryQueryset::read(const std::vector<ItemId>& ids) {
  std::vector<std::optional<Record>> out;
  out.reserve(ids.size());
  std::lock_guard lock(mutex_);
  for (ItemId id : ids) {
    auto it = records_.find(id);
    out.push_back(it == records_.end() ? std::nullopt : std::optional<Record>(it->second));
  }
  return out;
}

Page MemoryQueryset::read_page(std::size_t offset, std::size_t limit) {
  Page page;
  std::lock_guard lock(mutex_);
  page.total = records_.size();
  if (offset >= records_.size()) return page;
  auto it = std::next(records_.begin(), static_cast<std::ptrdiff_t>(offset));
  for (; it != records_.end() && page.records.size() < limit; ++it)
    page.records.push_back(it->second);
  return page;
}

std::optional<Record> MemoryQueryset::update(ItemId id, const Record& fields) {
  std::lock_guard lock(mutex_);
  auto it = records_.find(id);
  if (it == records_.end()) return std::nullopt;
  for (const auto& [k, v] : fields.items()) it->second[k] = v;
  return it->second;
}

std::vector<ItemId> MemoryQueryset::destroy(const std::vector<ItemId>& ids) {
  std::vector<ItemId> missing;
  std::lock_guard lock(mutex_);
  for (ItemId id : ids)
    if (!records_.contains(id)) missing.push_back(id);
  if (missing.empty())
    for (ItemId id : ids) records_.erase(id);
  return missing;
}

}  // namespace brubeck
