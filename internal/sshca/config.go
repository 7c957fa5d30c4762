package sshca

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

// Config is a project's SSH settings: the CAs that hosts registered without
// CA ids use. An empty id means none (the CA was deleted).
type Config struct {
	ID              string
	ProjectID       string
	DefaultUserCAID string
	DefaultHostCAID string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Names of the default CAs made on a project's first host, as Infisical names them.
const (
	DefaultUserCAName = "User CA"
	DefaultHostCAName = "Host CA"
)

func configNotFound(pid string) error {
	return errs.NotFoundf("Project SSH config with ID '%s' not found", pid)
}

func configEvent(actor authz.Actor, typ string, c Config) audit.Event {
	return audit.New(actor, typ, map[string]any{"id": c.ID, "projectId": c.ProjectID,
		"defaultUserSshCaId": nullable(c.DefaultUserCAID), "defaultHostSshCaId": nullable(c.DefaultHostCAID)}).InProject(c.ProjectID, "")
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// GetConfig returns a project's SSH settings; a project that has not yet
// registered a host has none (not found), as in Infisical. It needs read on
// the project's settings.
func (s *Service) GetConfig(ctx context.Context, actor authz.Actor, project string) (Config, error) {
	pid, err := projectID(project)
	if err != nil {
		return Config{}, err
	}
	if err := s.check(ctx, actor, pid, authz.ActRead, authz.SubSettings, nil, func() error { return projectNotFound(pid) }, false); err != nil {
		return Config{}, err
	}
	c, err := s.store.SSHConfig(ctx, pid)
	if errs.Is(err, errs.NotFound) {
		return Config{}, configNotFound(pid)
	}
	if err != nil {
		return Config{}, err
	}
	return c, s.store.AppendAudit(ctx, configEvent(actor, "get-project-ssh-config", c))
}

// ConfigUpdate sets a project's default CAs; nil leaves one as it is.
type ConfigUpdate struct {
	DefaultUserCAID *string
	DefaultHostCAID *string
}

// UpdateConfig sets a project's default CAs, which must be CAs of the
// project. It needs edit on the project's settings. A project without
// settings gets them (Infisical answers not found; setting the defaults
// before the first host is what an operator means).
func (s *Service) UpdateConfig(ctx context.Context, actor authz.Actor, project string, u ConfigUpdate) (Config, error) {
	pid, err := projectID(project)
	if err != nil {
		return Config{}, err
	}
	if err := s.check(ctx, actor, pid, authz.ActEdit, authz.SubSettings, nil, func() error { return projectNotFound(pid) }, false); err != nil {
		return Config{}, err
	}
	c, err := s.store.SSHConfig(ctx, pid)
	switch {
	case errs.Is(err, errs.NotFound):
		now := s.stamp()
		c = Config{ID: uuid.NewString(), ProjectID: pid, CreatedAt: now}
	case err != nil:
		return Config{}, err
	}
	for _, f := range []struct {
		field, label string
		in           *string
		out          *string
	}{{"defaultUserSshCaId", "User", u.DefaultUserCAID, &c.DefaultUserCAID}, {"defaultHostSshCaId", "Host", u.DefaultHostCAID, &c.DefaultHostCAID}} {
		if f.in == nil {
			continue
		}
		id := strings.TrimSpace(*f.in)
		ca, err := s.ca(ctx, id)
		if err == nil && ca.ProjectID != pid {
			err = caNotFound(id)
		}
		if errs.Is(err, errs.NotFound) {
			return Config{}, errs.NotFoundf("%s SSH CA must exist and belong to this project", f.label)
		}
		if err != nil {
			return Config{}, err
		}
		*f.out = ca.ID
	}
	c.UpdatedAt = s.stamp()
	if err := s.store.PutSSHConfig(ctx, c, configEvent(actor, "update-project-ssh-config", c)); err != nil {
		return Config{}, err
	}
	return c, nil
}

// defaults returns a project's default CA ids, making the project's
// settings with a new ED25519 user CA and host CA if it has none, as
// Infisical does on a project's first host. Two nodes racing here store one
// set: the loser's CAs are rolled back with its settings row.
func (s *Service) defaults(ctx context.Context, actor authz.Actor, pid string) (Config, error) {
	c, err := s.store.SSHConfig(ctx, pid)
	if !errs.Is(err, errs.NotFound) {
		return c, err
	}
	user, userKey, err := s.newCA(ctx, actor.OrgID, pid, DefaultUserCAName, ED25519)
	if err != nil {
		return Config{}, err
	}
	host, hostKey, err := s.newCA(ctx, actor.OrgID, pid, DefaultHostCAName, ED25519)
	if err != nil {
		return Config{}, err
	}
	now := s.stamp()
	c = Config{ID: uuid.NewString(), ProjectID: pid, DefaultUserCAID: user.ID, DefaultHostCAID: host.ID, CreatedAt: now, UpdatedAt: now}
	evs := []audit.Event{
		caEvent(actor, "create-ssh-ca", user, map[string]any{"keyAlgorithm": string(ED25519), "projectDefault": "user"}),
		caEvent(actor, "create-ssh-ca", host, map[string]any{"keyAlgorithm": string(ED25519), "projectDefault": "host"}),
		configEvent(actor, "create-project-ssh-config", c),
	}
	err = s.store.BootstrapSSHConfig(ctx, c, []NewSealedCA{{user, userKey}, {host, hostKey}}, evs)
	if errs.Is(err, errs.Conflict) {
		return s.store.SSHConfig(ctx, pid)
	}
	if err != nil {
		return Config{}, err
	}
	return c, nil
}

// NewSealedCA is a CA with its sealed private key, to store.
type NewSealedCA struct {
	CA        CA
	SealedKey []byte
}
