package edge

import "net/url"

// LastValue is form's last value of key, or "": the OpenID Connect
// library's form decoder takes a repeated parameter's last value, and
// the requests the broker answers before it read them as it does.
func LastValue(form url.Values, key string) string {
	if v := form[key]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}
