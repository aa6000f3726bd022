// PostgresQueryset: one statement per operation (atomic on its own, no
// transaction held across a wait), through the calling shard's pool. Values
// travel as text parameters, typed by their column.
#include <algorithm>

#include "autoapi_sql.hpp"
#include "brubeck/apps/autoapi.hpp"
#include "brubeck/drivers/postgres.hpp"

namespace brubeck {

namespace {

const char* pg_type(FieldType t) {
  switch (t) {
    case FieldType::string:
      return "TEXT";
    case FieldType::number:
      return "DOUBLE PRECISION";
    case FieldType::integer:
      return "BIGINT";
    case FieldType::boolean:
      return "BOOLEAN";
  }
  return "";
}

std::optional<std::string> to_pg(const Field& f, const Record& v) {
  if (v.is_null()) return std::nullopt;
  // PostgreSQL reads "1"/"0" as booleans too.
  return Model::to_text(f, v);
}

Record record_of(const Model& model, const PgResult& result, std::size_t r) {
  Record rec = Record::object();
  rec["id"] = Model::from_text(Field::integer("id"), result.get(r, 0).value_or("0"));
  for (std::size_t i = 0; i < model.fields().size(); ++i) {
    auto text = result.get(r, i + 1);
    rec[model.fields()[i].name] = text ? Model::from_text(model.fields()[i], *text) : Record();
  }
  return rec;
}

// "{1,2,3}": the ids as one bigint[] parameter.
std::string id_array(const std::vector<ItemId>& ids) {
  std::string out = "{";
  for (std::size_t i = 0; i < ids.size(); ++i)
    out += detail::cat(i ? "," : "", std::to_string(ids[i]));
  return out + "}";
}

}  // namespace

PostgresQueryset::PostgresQueryset(std::string conninfo, Model model, std::string table,
                                   std::size_t pool_size)
    : Queryset(std::move(model)),
      conninfo_(std::move(conninfo)),
      pool_size_(pool_size),
      table_(detail::sql_quote(table.empty() ? this->model().name() : table)),
      columns_(detail::sql_columns(this->model())) {}

void PostgresQueryset::ensure_table() {
  if (created_.load(std::memory_order_acquire)) return;
  try {
    PgPool::for_this_shard(conninfo_, pool_size_)
        .query(detail::sql_create_table(
            model(), table_, "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", pg_type));
  } catch (const PgError& e) {
    // Two shards creating it at once: IF NOT EXISTS does not stop the
    // second from tripping over the first's catalog rows.
    if (e.sqlstate != "23505" && e.sqlstate != "42P07") throw;
  }
  created_.store(true, std::memory_order_release);
}

std::vector<Record> PostgresQueryset::create(const std::vector<Record>& records) {
  ensure_table();
  if (records.empty()) return {};
  std::string names;
  for (const auto& f : model().fields())
    names += (names.empty() ? "" : ", ") + detail::sql_quote(f.name);
  std::string sql = "INSERT INTO " + table_ + " (" + names + ") VALUES ";
  PgParams params;
  for (std::size_t i = 0; i < records.size(); ++i) {
    sql += i ? ", (" : "(";
    for (std::size_t c = 0; c < model().fields().size(); ++c) {
      const auto& f = model().fields()[c];
      params.push_back(to_pg(f, records[i][f.name]));
      sql += (c ? ", $" : "$") + std::to_string(params.size());
    }
    sql += ")";
  }
  auto result =
      PgPool::for_this_shard(conninfo_, pool_size_).query(sql + " RETURNING \"id\"", params);
  std::vector<ItemId> ids;
  for (std::size_t r = 0; r < result.rows(); ++r)
    ids.push_back(Model::from_text(Field::integer("id"), *result.get(r, 0)).get<ItemId>());
  return detail::created_records(model(), records, std::move(ids));
}

std::vector<std::optional<Record>> PostgresQueryset::read(const std::vector<ItemId>& ids) {
  ensure_table();
  std::vector<std::optional<Record>> out(ids.size());
  if (ids.empty()) return out;
  auto result =
      PgPool::for_this_shard(conninfo_, pool_size_)
          .query("SELECT " + columns_ + " FROM " + table_ + " WHERE \"id\" = ANY($1::bigint[])",
                 {id_array(ids)});
  for (std::size_t r = 0; r < result.rows(); ++r) {
    Record rec = record_of(model(), result, r);
    const auto id = rec["id"].get<ItemId>();
    for (std::size_t i = 0; i < ids.size(); ++i)
      if (ids[i] == id) out[i] = rec;
  }
  return out;
}

Page PostgresQueryset::read_page(std::size_t offset, std::size_t limit) {
  ensure_table();
  auto& pool = PgPool::for_this_shard(conninfo_, pool_size_);
  Page page;
  auto result = pool.query("SELECT " + columns_ + ", count(*) OVER () FROM " + table_ +
                               " ORDER BY \"id\" LIMIT $1 OFFSET $2",
                           {std::to_string(limit), std::to_string(offset)});
  for (std::size_t r = 0; r < result.rows(); ++r)
    page.records.push_back(record_of(model(), result, r));
  if (result.rows() > 0) {
    page.total = std::stoull(std::string(*result.get(0, result.columns() - 1)));
  } else {
    auto count = pool.query("SELECT count(*) FROM " + table_);
    page.total = std::stoull(std::string(*count.get(0, 0)));
  }
  return page;
}

std::optional<Record> PostgresQueryset::update(ItemId id, const Record& fields) {
  ensure_table();
  std::string set;
  PgParams params;
  for (const auto& f : model().fields()) {
    auto it = fields.find(f.name);
    if (it == fields.end()) continue;
    params.push_back(to_pg(f, *it));
    set += (set.empty() ? "" : ", ") + detail::sql_quote(f.name) + " = $" +
           std::to_string(params.size());
  }
  if (set.empty()) return read({id}).front();
  params.push_back(std::to_string(id));
  auto result = PgPool::for_this_shard(conninfo_, pool_size_)
                    .query("UPDATE " + table_ + " SET " + set + " WHERE \"id\" = $" +
                               std::to_string(params.size()) + " RETURNING " + columns_,
                           params);
  if (result.rows() == 0) return std::nullopt;
  return record_of(model(), result, 0);
}

std::vector<ItemId> PostgresQueryset::destroy(const std::vector<ItemId>& ids) {
  ensure_table();
  if (ids.empty()) return {};
  // Deletes only when every id is there (the handler sends no id twice).
  auto result = PgPool::for_this_shard(conninfo_, pool_size_)
                    .query("DELETE FROM " + table_ +
                               " WHERE \"id\" = ANY($1::bigint[]) AND (SELECT count(*) FROM " +
                               table_ + " WHERE \"id\" = ANY($1::bigint[])) = $2",
                           {id_array(ids), std::to_string(ids.size())});
  if (result.affected_rows() == ids.size()) return {};
  std::vector<ItemId> missing;
  auto found = read(ids);
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (!found[i]) missing.push_back(ids[i]);
  return missing;
}

}  // namespace brubeck
