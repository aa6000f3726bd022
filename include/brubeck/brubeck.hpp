// Everything a brubeck application needs: App, the handler classes, routing,
// configuration, actors and the fiber-aware waits. Drivers (SQLite, Redis,
// PostgreSQL, HTTP client, ZeroMQ) have their own headers under
// brubeck/drivers/ and libraries (brubeck::drivers links them all);
// BRUBECK_VERSION comes with it (<brubeck/version.hpp>).
#pragma once

// JSON values for set_json, payload() and template contexts.
#include <nlohmann/json.hpp>

#include "brubeck/actors/app.hpp"
#include "brubeck/actors/ask.hpp"
#include "brubeck/apps/auth.hpp"
#include "brubeck/apps/csrf.hpp"
#include "brubeck/apps/handlers.hpp"
#include "brubeck/apps/session.hpp"
#include "brubeck/apps/templates.hpp"
#include "brubeck/config/config.hpp"
#include "brubeck/handlers/cookies.hpp"
#include "brubeck/handlers/digest.hpp"
#include "brubeck/handlers/handler.hpp"
#include "brubeck/handlers/http_error.hpp"
#include "brubeck/handlers/json.hpp"
#include "brubeck/handlers/routes.hpp"
#include "brubeck/pipeline/channel.hpp"
#include "brubeck/pipeline/condition.hpp"
#include "brubeck/pipeline/errors.hpp"
#include "brubeck/pipeline/fiber_hub.hpp"
#include "brubeck/pipeline/mutex.hpp"
#include "brubeck/pipeline/offload.hpp"
#include "brubeck/pipeline/spawn.hpp"
#include "brubeck/pipeline/tcp_stream.hpp"
#include "brubeck/pipeline/wait_group.hpp"
#include "brubeck/version.hpp"
