package main

import "testing"

func TestDashboardURL(t *testing.T) {
	for _, c := range []struct{ ws, token, want string }{
		{"ws://127.0.0.1:18789", "abc_DEF-123", "http://127.0.0.1:18789/#token=abc_DEF-123"},
		{"wss://gw.example.net:8443/base", "a+b/c=", "https://gw.example.net:8443/base/#token=a%2Bb%2Fc%3D"},
		{"ws://[::1]:19001/?x=1#frag", "", "http://[::1]:19001/"},
	} {
		got, err := dashboardURL(c.ws, c.token)
		if err != nil || got != c.want {
			t.Errorf("dashboardURL(%q, %q) = %q, %v; want %q", c.ws, c.token, got, err, c.want)
		}
	}
	if _, err := dashboardURL("http://127.0.0.1:1", "x"); err == nil {
		t.Error("dashboardURL accepted an http:// gateway URL")
	}
}
