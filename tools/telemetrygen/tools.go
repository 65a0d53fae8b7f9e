//go:build tools

package tools

import _ "github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen"
