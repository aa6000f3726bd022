// AutoAPI models: what a client's JSON must look like, and the JSON Schema
// that says so.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <stdexcept>

#include "brubeck/apps/autoapi.hpp"

namespace brubeck {

namespace {

bool is_identifier(std::string_view s) {
  if (s.empty() || s.size() > 63 || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

std::size_t code_points(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// "3", "2.5": as short as reads back the same.
std::string number_text(double v) {
  char buf[32];
  for (int precision = 15; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string bound_text(double v) {
  return v == std::floor(v) && std::abs(v) < 1e15 ? std::to_string(static_cast<std::int64_t>(v))
                                                  : number_text(v);
}

// The stored form of one field's JSON value, or the reason it is refused.
std::optional<std::string> check_value(const Field& f, const Record& v, Record& out) {
  const auto& o = f.options;
  if (v.is_null()) {
    if (o.required) return "required";
    out = nullptr;
    return std::nullopt;
  }
  switch (f.type) {
    case FieldType::string: {
      if (!v.is_string()) return "must be a string";
      const auto& s = v.get_ref<const std::string&>();
      // PostgreSQL's text cannot hold NUL: refused everywhere alike.
      if (s.find('\0') != std::string::npos) return "must not contain NUL characters";
      if (o.max_length && code_points(s) > *o.max_length)
        return "must be at most " + std::to_string(*o.max_length) + " characters";
      out = s;
      return std::nullopt;
    }
    case FieldType::boolean:
      if (!v.is_boolean()) return "must be true or false";
      out = v;
      return std::nullopt;
    case FieldType::integer:
    case FieldType::number: {
      double d;
      if (v.is_number_integer() && !v.is_number_unsigned()) {
        d = static_cast<double>(v.get<std::int64_t>());
        out = v.get<std::int64_t>();
      } else if (v.is_number_unsigned()) {
        if (v.get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
          return "is too large";
        d = static_cast<double>(v.get<std::uint64_t>());
        out = static_cast<std::int64_t>(v.get<std::uint64_t>());
      } else if (v.is_number_float()) {
        d = v.get<double>();
        if (f.type == FieldType::integer) {
          // 3.0 is an integer written another way; 3.5 is not.
          if (d != std::floor(d) || std::abs(d) > 9.007199254740992e15) return "must be an integer";
          out = static_cast<std::int64_t>(d);
        } else {
          out = d;
        }
      } else {
        return f.type == FieldType::integer ? "must be an integer" : "must be a number";
      }
      if (f.type == FieldType::number) out = d;
      if (o.min && d < *o.min) return "must be at least " + bound_text(*o.min);
      if (o.max && d > *o.max) return "must be at most " + bound_text(*o.max);
      return std::nullopt;
    }
  }
  return "unknown type";
}

const char* type_name(FieldType t) {
  switch (t) {
    case FieldType::string:
      return "string";
    case FieldType::integer:
      return "integer";
    case FieldType::number:
      return "number";
    case FieldType::boolean:
      return "boolean";
  }
  return "null";
}

}  // namespace

Field Field::string(std::string name, FieldOptions options) {
  return {std::move(name), FieldType::string, std::move(options)};
}
Field Field::integer(std::string name, FieldOptions options) {
  return {std::move(name), FieldType::integer, std::move(options)};
}
Field Field::number(std::string name, FieldOptions options) {
  return {std::move(name), FieldType::number, std::move(options)};
}
Field Field::boolean(std::string name, FieldOptions options) {
  return {std::move(name), FieldType::boolean, std::move(options)};
}

Model::Model(std::string name, std::vector<Field> fields)
    : name_(std::move(name)), fields_(std::move(fields)) {
  if (!is_identifier(name_))
    throw std::invalid_argument("autoapi: model name '" + name_ + "' is not [a-z_][a-z0-9_]*");
  if (fields_.empty()) throw std::invalid_argument("autoapi: model " + name_ + " has no field");
  std::set<std::string> seen;
  for (const auto& f : fields_) {
    if (!is_identifier(f.name) || f.name == "id")
      throw std::invalid_argument("autoapi: field name '" + f.name + "' of " + name_ +
                                  " is not [a-z_][a-z0-9_]* or is 'id'");
    if (!seen.insert(f.name).second)
      throw std::invalid_argument("autoapi: field '" + f.name + "' of " + name_ + " given twice");
    Record ignored;
    if (!f.options.default_value.is_null()) {
      if (auto why = check_value(f, f.options.default_value, ignored))
        throw std::invalid_argument("autoapi: default of " + name_ + "." + f.name + " " + *why);
    }
  }
}

const Field* Model::field(std::string_view name) const noexcept {
  for (const auto& f : fields_)
    if (f.name == name) return &f;
  return nullptr;
}

Record Model::check(const nlohmann::ordered_json& body, Check mode, FieldErrors& errors,
                    std::optional<ItemId> url_id, const std::string& prefix) const {
  Record out = Record::object();
  if (!body.is_object()) {
    errors[prefix.empty() ? "(body)" : prefix] = "must be a JSON object";
    return out;
  }
  for (const auto& [key, value] : body.items()) {
    if (key == "id") {
      // A client may send back the record it read (PUT with its "id").
      if (mode == Check::create)
        errors[prefix + key] = "is assigned by the server";
      else if (!(value.is_number_integer() && url_id && value.get<std::int64_t>() == *url_id))
        errors[prefix + key] = "does not match the URL";
      continue;
    }
    if (field(key) == nullptr) errors[prefix + key] = "unknown field";
  }
  for (const auto& f : fields_) {
    auto it = body.find(f.name);
    if (it == body.end()) {
      if (mode == Check::patch) continue;
      if (f.options.required) {
        errors[prefix + f.name] = "required";
        continue;
      }
      out[f.name] = f.options.default_value;
      continue;
    }
    Record value;
    if (auto why = check_value(f, *it, value))
      errors[prefix + f.name] = *why;
    else
      out[f.name] = std::move(value);
  }
  return out;
}

nlohmann::ordered_json Model::json_schema() const {
  nlohmann::ordered_json properties = nlohmann::ordered_json::object();
  properties["id"] = {{"type", "integer"}, {"readOnly", true}};
  auto required = nlohmann::ordered_json::array();
  for (const auto& f : fields_) {
    nlohmann::ordered_json p;
    const auto& o = f.options;
    if (o.required || !o.default_value.is_null())
      p["type"] = type_name(f.type);
    else
      p["type"] = {type_name(f.type), "null"};
    if (o.max_length) p["maxLength"] = *o.max_length;
    if (o.min) p["minimum"] = *o.min;
    if (o.max) p["maximum"] = *o.max;
    if (!o.default_value.is_null()) p["default"] = o.default_value;
    properties[f.name] = std::move(p);
    if (o.required) required.push_back(f.name);
  }
  return {{"$schema", "https://json-schema.org/draft/2020-12/schema"},
          {"title", name_},
          {"type", "object"},
          {"properties", std::move(properties)},
          {"required", std::move(required)},
          {"additionalProperties", false}};
}

std::string Model::to_text(const Field& field, const Record& value) {
  switch (field.type) {
    case FieldType::string:
      return value.get<std::string>();
    case FieldType::boolean:
      return value.get<bool>() ? "1" : "0";
    case FieldType::integer:
      return std::to_string(value.get<std::int64_t>());
    case FieldType::number:
      return number_text(value.get<double>());
  }
  return {};
}

Record Model::from_text(const Field& field, std::string_view text) {
  switch (field.type) {
    case FieldType::string:
      return std::string(text);
    // "t" is PostgreSQL's way of writing true.
    case FieldType::boolean:
      return text == "1" || text == "t" || text == "true";
    case FieldType::integer: {
      std::int64_t v = 0;
      std::from_chars(text.data(), text.data() + text.size(), v);
      return v;
    }
    case FieldType::number:
      return std::strtod(std::string(text).c_str(), nullptr);
  }
  return nullptr;
}

Queryset::~Queryset() = default;

}  // namespace brubeck
