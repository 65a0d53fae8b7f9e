//go:build tools

package tools

import _ "github.com/grafana/tempo/cmd/tempo"
