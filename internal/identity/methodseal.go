package identity

import (
	"context"
	"encoding/json"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/keyring"
)

// sealedField holds, in a stored configuration, the sealed values of the
// method's secret fields by name; the fields themselves are not stored.
const sealedField = "_sealed"

func configAD(configID, field string) string {
	return keyring.AD("identity_auth_configs", "config."+field, configID)
}

// sealConfig returns plain, a configuration from the method's Configure,
// with reg's secret fields sealed under orgID's data key, bound to the
// configuration's id and the field's name. A configuration without secret
// fields is stored as it is.
func (m *Methods) sealConfig(ctx context.Context, reg authmethod.Registration, orgID, configID string, plain json.RawMessage) (json.RawMessage, error) {
	if len(reg.Secret) == 0 {
		return plain, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(plain, &obj); err != nil {
		return nil, errs.Internalf(err, "decode %s configuration", reg.Name)
	}
	sealed := map[string][]byte{}
	for _, f := range reg.Secret {
		v, ok := obj[f]
		delete(obj, f)
		if !ok || string(v) == `""` || string(v) == "null" {
			continue
		}
		ct, err := m.svc.keys.Seal(ctx, keyring.Org(orgID), v, configAD(configID, f))
		if err != nil {
			return nil, errs.Internalf(err, "seal %s configuration", reg.Name)
		}
		sealed[f] = ct
	}
	b, err := json.Marshal(sealed) // []byte values as base64
	if err != nil {
		return nil, err
	}
	obj[sealedField] = b
	return json.Marshal(obj)
}

// openConfig returns a stored configuration with its secret fields opened:
// what Configure (as the old configuration) and New are given.
func (m *Methods) openConfig(ctx context.Context, reg authmethod.Registration, orgID, configID string, stored json.RawMessage) (json.RawMessage, error) {
	if len(reg.Secret) == 0 {
		return stored, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(stored, &obj); err != nil {
		return nil, errs.Internalf(err, "decode stored %s configuration", reg.Name)
	}
	var sealed map[string][]byte
	if raw, ok := obj[sealedField]; ok {
		if err := json.Unmarshal(raw, &sealed); err != nil {
			return nil, errs.Internalf(err, "decode sealed %s fields", reg.Name)
		}
	}
	delete(obj, sealedField)
	for _, f := range reg.Secret {
		delete(obj, f)
		ct, ok := sealed[f]
		if !ok {
			continue
		}
		v, err := m.svc.keys.Open(ctx, keyring.Org(orgID), ct, configAD(configID, f))
		if err != nil {
			return nil, errs.Internalf(err, "open %s configuration", reg.Name)
		}
		obj[f] = v
	}
	return json.Marshal(obj)
}

// redactConfig returns a configuration, stored or plain, without its secret
// fields: what clients and the audit log see.
func redactConfig(reg authmethod.Registration, cfg json.RawMessage) (json.RawMessage, error) {
	if len(reg.Secret) == 0 {
		return cfg, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(cfg, &obj); err != nil {
		return nil, errs.Internalf(err, "decode %s configuration", reg.Name)
	}
	delete(obj, sealedField)
	for _, f := range reg.Secret {
		delete(obj, f)
	}
	return json.Marshal(obj)
}
