#include "app.hpp"

#include <string>

namespace @NAME@ {
namespace {

// The home page: a template, and a visit counter kept in the session (its
// id travels in a signed cookie, the count stays on the server).
class HomeHandler : public brubeck::PageHandler {
 public:
  void get() override {
    int visits = session().get("visits", 0).get<int>() + 1;
    session()["visits"] = visits;
    render("home",
           {{"app", "@NAME@"}, {"name", get_argument("name", "world")}, {"visits", visits}});
  }
};

}  // namespace

void setup(brubeck::App& app) {
  brubeck::use_templates(app);
  brubeck::use_sessions(app);
  app.route<HomeHandler>(R"(^/$)");
}

}  // namespace @NAME@
