// The live metrics page (live_route) and uPlot's script and style, built
// into the library by CMake from actors/live, so an installed program needs
// no file at run time. uplot_js and uplot_css are empty when uPlot was not
// installed (npm ci) when the library was configured; `missing` then says
// what to do.
#pragma once

#include <string_view>

namespace brubeck::live {

extern const std::string_view page;
extern const std::string_view uplot_js;
extern const std::string_view uplot_css;
extern const std::string_view missing;

}  // namespace brubeck::live
