// @NAME@'s routes, in one place for main() and the tests.
#pragma once

#include <brubeck/brubeck.hpp>

namespace @NAME@ {

// Loads the templates (setting `templates`), opens the session store
// (`session_store`; needs a `cookie_secrets` entry) and declares the routes.
void setup(brubeck::App& app);

}  // namespace @NAME@
