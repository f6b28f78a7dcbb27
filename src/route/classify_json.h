// A minimal JSON reader for pg_query's parse trees, private to the classifier: one pass
// builds a flat node array (first child / next sibling links) whose keys and texts are
// views into the input, so the input must outlive it. Iterative, so nesting depth costs
// memory, never stack. Not a general JSON library: it accepts valid JSON and rejects the
// rest without trying to say where.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pgrouter::json {

inline constexpr std::uint32_t kNone = UINT32_MAX;

enum class JType : std::uint8_t { Object, Array, String, Number, True, False, Null };

struct JNode {
    JType type = JType::Null;
    std::string_view key;   // member name inside an object (escapes kept); empty otherwise
    std::string_view text;  // String: the raw contents between the quotes; Number: the literal
    std::uint32_t first = kNone;  // first child (Object, Array)
    std::uint32_t next = kNone;   // next sibling
};

class Json {
  public:
    // False when `text` is not one well-formed JSON value. Node 0 is the root.
    [[nodiscard]] bool parse(std::string_view text);

    const JNode& at(std::uint32_t i) const { return nodes_[i]; }
    std::uint32_t first(std::uint32_t i) const { return i == kNone ? kNone : nodes_[i].first; }
    std::uint32_t next(std::uint32_t i) const { return i == kNone ? kNone : nodes_[i].next; }
    // The member `key` of object `obj`; kNone when absent (pg_query omits default values:
    // false, 0, empty lists) or when obj is kNone or not an object.
    std::uint32_t get(std::uint32_t obj, std::string_view key) const;
    // The decoded value of String node `i`; empty for kNone or a non-string.
    std::string string(std::uint32_t i) const;

  private:
    std::vector<JNode> nodes_;
};

}  // namespace pgrouter::json
