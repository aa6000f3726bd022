// SqliteQueryset: one statement per operation, so each is atomic without a
// transaction (the database's one connection is shared by every fiber, so a
// BEGIN from one would take in the others' statements).
#include <algorithm>
#include <variant>

#include "autoapi_sql.hpp"
#include "brubeck/apps/autoapi.hpp"
#include "brubeck/drivers/sqlite.hpp"

namespace brubeck {

namespace {

const char* sqlite_type(FieldType t) {
  switch (t) {
    case FieldType::string:
      return "TEXT";
    case FieldType::number:
      return "REAL";
    case FieldType::integer:
    case FieldType::boolean:
      return "INTEGER";
  }
  return "";
}

SqliteValue to_sqlite(const Field& f, const Record& v) {
  if (v.is_null()) return std::monostate{};
  switch (f.type) {
    case FieldType::string:
      return v.get<std::string>();
    case FieldType::boolean:
      return std::int64_t{v.get<bool>() ? 1 : 0};
    case FieldType::integer:
      return v.get<std::int64_t>();
    case FieldType::number:
      return v.get<double>();
  }
  return std::monostate{};
}

Record from_sqlite(const Field& f, const SqliteValue& v) {
  if (std::holds_alternative<std::monostate>(v)) return nullptr;
  switch (f.type) {
    case FieldType::string:
      if (auto* s = std::get_if<std::string>(&v)) return *s;
      break;
    case FieldType::boolean:
      if (auto* i = std::get_if<std::int64_t>(&v)) return *i != 0;
      break;
    case FieldType::integer:
      if (auto* i = std::get_if<std::int64_t>(&v)) return *i;
      if (auto* d = std::get_if<double>(&v)) return static_cast<std::int64_t>(*d);
      break;
    case FieldType::number:
      if (auto* d = std::get_if<double>(&v)) return *d;
      if (auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
      break;
  }
  // A table written by something else: show what is there, as text.
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  return nullptr;
}

// Row `r` of a result whose columns are sql_columns(model).
Record record_of(const Model& model, const SqliteResult& result, std::size_t r) {
  Record rec = Record::object();
  const auto& row = result.rows[r];
  rec["id"] = std::get<std::int64_t>(row[0]);
  for (std::size_t i = 0; i < model.fields().size(); ++i)
    rec[model.fields()[i].name] = from_sqlite(model.fields()[i], row[i + 1]);
  return rec;
}

// "?, ?, ?"
std::string marks(std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += i ? ", ?" : "?";
  return out;
}

}  // namespace

SqliteQueryset::SqliteQueryset(std::shared_ptr<SqliteDatabase> db, Model model, std::string table)
    : Queryset(std::move(model)),
      db_(std::move(db)),
      table_(detail::sql_quote(table.empty() ? this->model().name() : table)),
      columns_(detail::sql_columns(this->model())) {}

SqliteQueryset::~SqliteQueryset() = default;

void SqliteQueryset::ensure_table() {
  if (created_.load(std::memory_order_acquire)) return;
  // AUTOINCREMENT: a deleted record's id is never handed out again.
  db_->query(
      detail::sql_create_table(model(), table_, "INTEGER PRIMARY KEY AUTOINCREMENT", sqlite_type));
  created_.store(true, std::memory_order_release);
}

std::vector<Record> SqliteQueryset::create(const std::vector<Record>& records) {
  ensure_table();
  if (records.empty()) return {};
  std::string names;
  for (const auto& f : model().fields())
    names += (names.empty() ? "" : ", ") + detail::sql_quote(f.name);
  std::string sql = "INSERT INTO " + table_ + " (" + names + ") VALUES ";
  std::vector<SqliteValue> params;
  for (std::size_t i = 0; i < records.size(); ++i) {
    sql += (i ? ", (" : "(") + marks(model().fields().size()) + ")";
    for (const auto& f : model().fields()) params.push_back(to_sqlite(f, records[i][f.name]));
  }
  auto result = db_->query(sql + " RETURNING \"id\"", std::move(params));
  std::vector<ItemId> ids;
  for (const auto& row : result.rows) ids.push_back(std::get<std::int64_t>(row[0]));
  return detail::created_records(model(), records, std::move(ids));
}

std::vector<std::optional<Record>> SqliteQueryset::read(const std::vector<ItemId>& ids) {
  ensure_table();
  std::vector<std::optional<Record>> out(ids.size());
  if (ids.empty()) return out;
  std::vector<SqliteValue> params(ids.begin(), ids.end());
  auto result = db_->query(
      "SELECT " + columns_ + " FROM " + table_ + " WHERE \"id\" IN (" + marks(ids.size()) + ")",
      std::move(params));
  for (std::size_t r = 0; r < result.rows.size(); ++r) {
    Record rec = record_of(model(), result, r);
    const auto id = rec["id"].get<ItemId>();
    for (std::size_t i = 0; i < ids.size(); ++i)
      if (ids[i] == id) out[i] = rec;
  }
  return out;
}

Page SqliteQueryset::read_page(std::size_t offset, std::size_t limit) {
  ensure_table();
  Page page;
  // The count in the same statement: the page and its total agree.
  auto result = db_->query("SELECT " + columns_ + ", count(*) OVER () FROM " + table_ +
                               " ORDER BY \"id\" LIMIT ? OFFSET ?",
                           {static_cast<std::int64_t>(limit), static_cast<std::int64_t>(offset)});
  for (std::size_t r = 0; r < result.rows.size(); ++r)
    page.records.push_back(record_of(model(), result, r));
  if (!result.rows.empty()) {
    page.total = static_cast<std::size_t>(std::get<std::int64_t>(result.rows[0].back()));
  } else {
    auto count = db_->query("SELECT count(*) FROM " + table_);
    page.total = static_cast<std::size_t>(std::get<std::int64_t>(count.rows.at(0).at(0)));
  }
  return page;
}

std::optional<Record> SqliteQueryset::update(ItemId id, const Record& fields) {
  ensure_table();
  std::string set;
  std::vector<SqliteValue> params;
  for (const auto& f : model().fields()) {
    auto it = fields.find(f.name);
    if (it == fields.end()) continue;
    set += (set.empty() ? "" : ", ") + detail::sql_quote(f.name) + " = ?";
    params.push_back(to_sqlite(f, *it));
  }
  if (set.empty()) return read({id}).front();
  params.emplace_back(id);
  auto result =
      db_->query("UPDATE " + table_ + " SET " + set + " WHERE \"id\" = ? RETURNING " + columns_,
                 std::move(params));
  if (result.rows.empty()) return std::nullopt;
  return record_of(model(), result, 0);
}

std::vector<ItemId> SqliteQueryset::destroy(const std::vector<ItemId>& ids) {
  ensure_table();
  if (ids.empty()) return {};
  // Deletes only when every id is there (the handler sends no id twice).
  std::vector<SqliteValue> params(ids.begin(), ids.end());
  params.insert(params.end(), ids.begin(), ids.end());
  params.emplace_back(static_cast<std::int64_t>(ids.size()));
  const std::string in = "\"id\" IN (" + marks(ids.size()) + ")";
  auto result = db_->query("DELETE FROM " + table_ + " WHERE " + in +
                               " AND (SELECT count(*) FROM " + table_ + " WHERE " + in + ") = ?",
                           std::move(params));
  if (result.changes == static_cast<std::int64_t>(ids.size())) return {};
  std::vector<ItemId> missing;
  auto found = read(ids);
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (!found[i]) missing.push_back(ids[i]);
  return missing;
}

}  // namespace brubeck
