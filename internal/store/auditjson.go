package store

import (
	"encoding/json"
	"strconv"
)

// appendMetadata appends the JSON of m exactly as json.Marshal writes it
// (keys in byte order, the same escaping). Audit metadata is a handful of
// keys with string, integer or boolean values; encoding those directly
// spares json.Marshal's reflection and sorting on every audited request
// (about a fifth of an audit row's CPU). Any other value, or more than 16
// keys, goes through json.Marshal itself.
func appendMetadata(dst []byte, m map[string]any) []byte {
	if len(m) > 16 {
		return appendMarshal(dst, m)
	}
	var buf [16]string
	keys := buf[:0]
	for k, v := range m {
		switch v.(type) {
		case string, int, int64, int32, bool, nil:
		default:
			return appendMarshal(dst, m)
		}
		// insertion sort: a few keys
		i := len(keys)
		keys = append(keys, k)
		for i > 0 && keys[i-1] > k {
			keys[i] = keys[i-1]
			i--
		}
		keys[i] = k
	}
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		switch v := m[k].(type) {
		case string:
			dst = appendJSONString(dst, v)
		case int:
			dst = strconv.AppendInt(dst, int64(v), 10)
		case int64:
			dst = strconv.AppendInt(dst, v, 10)
		case int32:
			dst = strconv.AppendInt(dst, int64(v), 10)
		case bool:
			dst = strconv.AppendBool(dst, v)
		case nil:
			dst = append(dst, "null"...)
		}
	}
	return append(dst, '}')
}

func appendMarshal(dst []byte, v any) []byte {
	b, _ := json.Marshal(v)
	return append(dst, b...)
}

// appendJSONString appends s quoted as json.Marshal quotes it: printable
// ASCII other than the characters it escapes is copied, anything else is
// left to json.Marshal.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return appendMarshal(dst, s)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// auditMetadataJSON is appendMetadata as a string, "{}" for a nil map.
func auditMetadataJSON(m map[string]any) string {
	if len(m) == 0 {
		return "{}"
	}
	return string(appendMetadata(make([]byte, 0, 128), m))
}
