package upstream

import "strings"

// Lookup follows a dotted path ("a.b.c") through the nested JSON objects
// of an upstream's answer, as connectors' claim and field mappings name
// them.
func Lookup(obj map[string]any, path string) (any, bool) {
	var v any = obj
	for part := range strings.SplitSeq(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[part]; !ok {
			return nil, false
		}
	}
	return v, true
}
