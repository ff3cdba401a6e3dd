package config

// HTTPConfig is the "http" section: the OpenAI-compatible HTTP endpoints on
// the gateway's port. They are off (404) until enabled.
type HTTPConfig struct {
	Endpoints    HTTPEndpointsConfig `json:"endpoints"`              // which endpoints are on
	MaxBodyBytes int                 `json:"maxBodyBytes,omitempty"` // largest request body; default 1 MiB (413 past it)
}

// HTTPEndpointsConfig is "http.endpoints".
type HTTPEndpointsConfig struct {
	ChatCompletions HTTPEndpointConfig `json:"chatCompletions"` // POST /v1/chat/completions and GET /v1/models
	Responses       HTTPEndpointConfig `json:"responses"`       // POST /v1/responses (and GET /v1/models)
}

// HTTPEndpointConfig switches one endpoint on or off.
type HTTPEndpointConfig struct {
	Enabled bool `json:"enabled,omitempty"` // default false: the endpoint answers 404
}

// DefaultHTTPMaxBodyBytes is the default of http.maxBodyBytes.
const DefaultHTTPMaxBodyBytes = 1 << 20

func (x *HTTPConfig) withDefaults() {
	setDefault(&x.MaxBodyBytes, DefaultHTTPMaxBodyBytes)
}

// unshare: every field is a value.
func (x *HTTPConfig) unshare() {}

func (x *HTTPConfig) validate() *Error {
	return intRange("http.maxBodyBytes", x.MaxBodyBytes, 0, maxHTTPBodyBytes)
}
