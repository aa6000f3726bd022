// What the SQL querysets (SQLite, PostgreSQL) share: quoting and the
// column lists, so both spell a model's table the same way; and cat().
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "brubeck/apps/autoapi.hpp"

namespace brubeck::detail {

// Joins text without `"literal" + std::string(...)`, which g++ 12 -O2 flags
// with a false -Wrestrict.
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  (out.append(std::string_view(parts)), ...);
  return out;
}

// "name", with any '"' doubled (model names are identifiers already; a
// table name given by the app may not be).
inline std::string sql_quote(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

// "id", "a", "b": every column, in the model's order.
inline std::string sql_columns(const Model& model) {
  std::string out = "\"id\"";
  for (const auto& f : model.fields()) out += ", " + sql_quote(f.name);
  return out;
}

// The CREATE TABLE for a model; `id_type` and `types` are the dialect's.
template <class TypeOf>
std::string sql_create_table(const Model& model, const std::string& table,
                             std::string_view id_column, TypeOf type_of) {
  std::string sql = "CREATE TABLE IF NOT EXISTS " + table + " (\"id\" " + std::string(id_column);
  for (const auto& f : model.fields()) {
    sql += ", " + sql_quote(f.name) + " " + type_of(f.type);
    if (f.options.required) sql += " NOT NULL";
  }
  return sql + ")";
}

// The records an INSERT ... RETURNING "id" made: ids rise in the order of
// VALUES, but RETURNING promises no order, so they are sorted first.
inline std::vector<Record> created_records(const Model& model, const std::vector<Record>& records,
                                           std::vector<ItemId> ids) {
  std::sort(ids.begin(), ids.end());
  std::vector<Record> out;
  for (std::size_t i = 0; i < records.size(); ++i) {
    Record rec = Record::object();
    rec["id"] = ids.at(i);
    for (const auto& f : model.fields()) rec[f.name] = records[i][f.name];
    out.push_back(std::move(rec));
  }
  return out;
}

}  // namespace brubeck::detail
