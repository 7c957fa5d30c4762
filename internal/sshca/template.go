package sshca

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/cache"
	"github.com/lockbox-dev/lockbox/internal/dynamic"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/lazyre"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// TemplateInput creates or (nil fields unchanged) updates a template.
type TemplateInput struct {
	CAID              string // create only
	Name              *string
	Status            *string
	TTL               *string // default "1h"
	MaxTTL            *string // default "30d"
	AllowedUsers      []string
	AllowedHosts      []string
	AllowUserCerts    *bool
	AllowHostCerts    *bool
	AllowCustomKeyIDs *bool
	Extensions        map[string]string // nil: unchanged (create: OpenSSH's permit-* set)
	CriticalOptions   map[string]string
	// SetUsers, SetHosts, SetCritical say that the lists were given
	// (an empty list is a change).
	SetUsers, SetHosts, SetCritical bool
}

var slugRE = lazyre.New(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

func parseTTL(field, s string) (time.Duration, error) {
	d, err := dynamic.ParseTTL(s)
	if err != nil {
		msg := "not a duration such as 30s, 15m, 1h or 1d"
		if e, ok := errors.AsType[*errs.Error](err); ok {
			msg = e.Message
		}
		return 0, errs.Fieldf(field, "%s: %s", field, msg)
	}
	return d, nil
}

// apply validates in and writes it into t.
func (in TemplateInput) apply(t *Template) error {
	var err error
	if in.Name != nil {
		n := strings.TrimSpace(*in.Name)
		if n == "" || len(n) > 36 || !slugRE().MatchString(n) {
			return errs.Fieldf("name", "Name must be a valid slug of 1 to 36 characters")
		}
		t.Name = n
	}
	if in.Status != nil {
		if t.Status, err = checkStatus("status", *in.Status); err != nil {
			return err
		}
	}
	if in.TTL != nil {
		t.TTL = strings.TrimSpace(*in.TTL)
	}
	if in.MaxTTL != nil {
		t.MaxTTL = strings.TrimSpace(*in.MaxTTL)
	}
	ttl, err := parseTTL("ttl", t.TTL)
	if err != nil {
		return err
	}
	maxTTL, err := parseTTL("maxTTL", t.MaxTTL)
	if err != nil {
		return err
	}
	if ttl > maxTTL {
		return errs.Fieldf("ttl", "ttl must not exceed maxTTL")
	}
	if in.SetUsers {
		if t.AllowedUsers, err = checkPatterns("allowedUsers", in.AllowedUsers); err != nil {
			return err
		}
	}
	if in.SetHosts {
		if t.AllowedHosts, err = checkPatterns("allowedHosts", in.AllowedHosts); err != nil {
			return err
		}
	}
	if in.AllowUserCerts != nil {
		t.AllowUserCerts = *in.AllowUserCerts
	}
	if in.AllowHostCerts != nil {
		t.AllowHostCerts = *in.AllowHostCerts
	}
	if in.AllowCustomKeyIDs != nil {
		t.AllowCustomKeyIDs = *in.AllowCustomKeyIDs
	}
	if in.Extensions != nil || t.Extensions == nil {
		if t.Extensions, err = checkExtensions(in.Extensions); err != nil {
			return err
		}
	}
	if in.SetCritical || t.CriticalOptions == nil {
		if t.CriticalOptions, err = checkCriticalOptions(in.CriticalOptions); err != nil {
			return err
		}
	}
	if t.AllowedUsers == nil {
		t.AllowedUsers = []string{}
	}
	if t.AllowedHosts == nil {
		t.AllowedHosts = []string{}
	}
	return nil
}

func templateEvent(actor authz.Actor, typ string, t Template, full bool) audit.Event {
	md := map[string]any{"certificateTemplateId": t.ID, "sshCaId": t.CAID}
	if full {
		md["name"], md["status"], md["ttl"], md["maxTTL"] = t.Name, t.Status, t.TTL, t.MaxTTL
		md["allowedUsers"], md["allowedHosts"] = t.AllowedUsers, t.AllowedHosts
		md["allowUserCertificates"], md["allowHostCertificates"], md["allowCustomKeyIds"] = t.AllowUserCerts, t.AllowHostCerts, t.AllowCustomKeyIDs
		md["extensions"], md["criticalOptions"] = t.Extensions, t.CriticalOptions
	}
	return audit.New(actor, typ, md).InProject(t.ProjectID, "")
}

// CreateTemplate adds a certificate template to a CA.
func (s *Service) CreateTemplate(ctx context.Context, actor authz.Actor, in TemplateInput) (Template, error) {
	if strings.TrimSpace(in.CAID) == "" {
		return Template{}, errs.Fieldf("sshCaId", "sshCaId is required")
	}
	if in.Name == nil {
		return Template{}, errs.Fieldf("name", "name is required")
	}
	ca, err := s.ca(ctx, strings.TrimSpace(in.CAID))
	if err != nil {
		return Template{}, err
	}
	if err := s.check(ctx, actor, ca.ProjectID, authz.ActCreate, authz.SubSshCertTemplates, nil, func() error { return caNotFound(ca.ID) }, true); err != nil {
		return Template{}, err
	}
	now := s.stamp()
	t := Template{ID: uuid.NewString(), ProjectID: ca.ProjectID, CAID: ca.ID, Status: Active, TTL: "1h", MaxTTL: "30d",
		CreatedAt: now, UpdatedAt: now}
	in.SetUsers, in.SetHosts = true, true
	if err := in.apply(&t); err != nil {
		return Template{}, err
	}
	if ts, err := s.store.SSHTemplates(ctx, ca.ProjectID, ""); err != nil {
		return Template{}, err
	} else if len(ts) >= MaxTemplatesPerProject {
		return Template{}, TooManyTemplates(len(ts))
	}
	err = s.store.CreateSSHTemplate(ctx, t, templateEvent(actor, "create-ssh-certificate-template", t, true))
	if errs.Is(err, errs.Conflict) {
		return Template{}, errs.BadRequest("An SSH certificate template named %q already exists in the project", t.Name)
	}
	return t, err
}

// loadTemplate reads a template by id, from the cache when it can.
func (s *Service) loadTemplate(ctx context.Context, id string) (Template, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Template{}, templateNotFound(id)
	}
	t, err := cache.Load(ctx, s.templates, id, s.now(), func(ctx context.Context) (Template, time.Time, error) {
		t, err := s.store.SSHTemplate(ctx, id)
		return t, time.Time{}, err
	})
	if errs.Is(err, errs.NotFound) {
		return Template{}, templateNotFound(id)
	}
	return t, err
}

// template reads a template and checks action on templates in its project.
func (s *Service) template(ctx context.Context, actor authz.Actor, id, action string) (Template, error) {
	t, err := s.loadTemplate(ctx, id)
	if err != nil {
		return Template{}, err
	}
	return t, s.check(ctx, actor, t.ProjectID, action, authz.SubSshCertTemplates, nil, func() error { return templateNotFound(id) }, true)
}

// GetTemplate returns a template by id.
func (s *Service) GetTemplate(ctx context.Context, actor authz.Actor, id string) (Template, error) {
	t, err := s.template(ctx, actor, id, authz.ActRead)
	if err != nil {
		return Template{}, err
	}
	return t, s.store.AppendAudit(ctx, templateEvent(actor, "get-ssh-certificate-template", t, false))
}

// ListTemplates returns a project's templates.
func (s *Service) ListTemplates(ctx context.Context, actor authz.Actor, project string) ([]Template, error) {
	pid, err := projectID(project)
	if err != nil {
		return nil, err
	}
	if err := s.check(ctx, actor, pid, authz.ActRead, authz.SubSshCertTemplates, nil, func() error { return projectNotFound(pid) }, false); err != nil {
		return nil, err
	}
	return s.store.SSHTemplates(ctx, pid, "")
}

// UpdateTemplate changes a template. A change that commits first is read
// again, not undone.
func (s *Service) UpdateTemplate(ctx context.Context, actor authz.Actor, id string, in TemplateInput) (Template, error) {
	return project.RetryStale(ctx, "SSH certificate template", func() (Template, error) {
		t, err := s.template(ctx, actor, id, authz.ActEdit)
		if err != nil {
			return Template{}, err
		}
		if err := in.apply(&t); err != nil {
			return Template{}, err
		}
		prev := t.UpdatedAt
		t.UpdatedAt = project.NextStamp(s.now(), prev)
		err = s.store.UpdateSSHTemplate(ctx, t, prev, templateEvent(actor, "update-ssh-certificate-template", t, true))
		if errs.Is(err, errs.Conflict) {
			return Template{}, errs.BadRequest("An SSH certificate template named %q already exists in the project", t.Name)
		}
		return t, err
	})
}

// DeleteTemplate deletes a template.
func (s *Service) DeleteTemplate(ctx context.Context, actor authz.Actor, id string) (Template, error) {
	t, err := s.template(ctx, actor, id, authz.ActDelete)
	if err != nil {
		return Template{}, err
	}
	err = s.store.DeleteSSHTemplate(ctx, id, templateEvent(actor, "delete-ssh-certificate-template", t, false))
	if errs.Is(err, errs.NotFound) {
		return Template{}, templateNotFound(id)
	}
	return t, err
}
