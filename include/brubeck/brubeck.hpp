// Everything a brubeck application needs: App, the handler classes, routing,
// configuration and the fiber-aware waits.
#pragma once

#include "brubeck/actors/app.hpp"
#include "brubeck/config/config.hpp"
#include "brubeck/handlers/cookies.hpp"
#include "brubeck/handlers/digest.hpp"
#include "brubeck/handlers/handler.hpp"
#include "brubeck/handlers/http_error.hpp"
#include "brubeck/handlers/json.hpp"
#include "brubeck/handlers/routes.hpp"
#include "brubeck/pipeline/fiber_hub.hpp"
