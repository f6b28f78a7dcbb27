// Walking a text line by line with 1-based line numbers, for the small line-oriented
// file formats (hba, authdb) whose errors name file:line. A final line without '\n' counts.
#pragma once

#include <string_view>

namespace pgrouter {

class LineCursor {
  public:
    explicit LineCursor(std::string_view text) : text_(text) {}

    // The next line (without its '\n'); false after the last one.
    bool next(std::string_view& line) {
        if (start_ > text_.size()) return false;
        std::size_t end = text_.find('\n', start_);
        if (end == std::string_view::npos) end = text_.size();
        line = text_.substr(start_, end - start_);
        start_ = end + 1;
        ++number_;
        return true;
    }
    int number() const { return number_; }

  private:
    std::string_view text_;
    std::size_t start_ = 0;
    int number_ = 0;
};

}  // namespace pgrouter
