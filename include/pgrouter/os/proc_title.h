// The process title shown by ps ("pgrouter: worker 3"), written over argv as PostgreSQL
// does. proc_title_init() must run first thing in main(); it moves environ out of the way.
#pragma once

#include <string_view>

namespace pgrouter {

void proc_title_init(int argc, char** argv);
void proc_title_set(std::string_view title);

}  // namespace pgrouter
