package pki

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/lazyre"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// TemplateInput is what CreateTemplate and UpdateTemplate take; on update,
// nil fields stay as they are.
type TemplateInput struct {
	CAID                   *string
	Name                   *string
	CommonName             *string
	SubjectAlternativeName *string
	TTL                    *string
	KeyUsages              []string
	ExtendedKeyUsages      []string
	// SetKeyUsages and SetExtendedKeyUsages tell an update to write the lists.
	SetKeyUsages, SetExtendedKeyUsages bool
}

var templateNameRE = lazyre.New(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

func (s *Service) template(ctx context.Context, actor authz.Actor, id, action string) (Template, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Template{}, templateNotFound(id)
	}
	t, err := s.store.Template(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return Template{}, templateNotFound(id)
	}
	if err != nil {
		return Template{}, err
	}
	return t, s.check(ctx, actor, t.ProjectID, action, authz.SubCertificateTemplates, func() error { return templateNotFound(id) }, true)
}

func templateEvent(actor authz.Actor, typ string, t Template) audit.Event {
	return audit.New(actor, typ, map[string]any{"certificateTemplateId": t.ID, "caId": t.CAID, "name": t.Name,
		"commonName": t.CommonName, "subjectAlternativeName": t.SubjectAlternativeName, "ttl": t.TTL}).InProject(t.ProjectID, "")
}

// apply writes in's fields onto t and checks the result.
func (in TemplateInput) apply(t *Template) error {
	if in.Name != nil {
		t.Name = strings.TrimSpace(*in.Name)
	}
	if len(t.Name) < 1 || len(t.Name) > 64 || !templateNameRE().MatchString(t.Name) {
		return errs.Fieldf("name", "name must be 1 to 64 lowercase letters, digits and hyphens (a slug)")
	}
	if in.CommonName != nil {
		t.CommonName = strings.TrimSpace(*in.CommonName)
	}
	if err := checkGlobs("commonName", t.CommonName); err != nil {
		return err
	}
	if in.SubjectAlternativeName != nil {
		t.SubjectAlternativeName = strings.TrimSpace(*in.SubjectAlternativeName)
	}
	if err := checkGlobs("subjectAlternativeName", t.SubjectAlternativeName); err != nil {
		return err
	}
	if in.TTL != nil {
		t.TTL = strings.TrimSpace(*in.TTL)
	}
	d, err := ParseTTL("ttl", t.TTL)
	if err != nil {
		return err
	}
	t.MaxTTL = d
	if in.SetKeyUsages || t.KeyUsages == nil {
		if t.KeyUsages, err = checkUsages("keyUsages", in.KeyUsages, true); err != nil {
			return err
		}
	}
	if in.SetExtendedKeyUsages || t.ExtendedKeyUsages == nil {
		if t.ExtendedKeyUsages, err = checkUsages("extendedKeyUsages", in.ExtendedKeyUsages, true); err != nil {
			return err
		}
	}
	return nil
}

func duplicateTemplate(name string) error {
	return errs.BadRequest("A certificate template named %q already exists in the project", name)
}

// CreateTemplate makes a template bound to a CA, in the CA's project.
func (s *Service) CreateTemplate(ctx context.Context, actor authz.Actor, in TemplateInput) (Template, error) {
	if in.CAID == nil || strings.TrimSpace(*in.CAID) == "" {
		return Template{}, errs.Fieldf("caId", "caId is required")
	}
	t := Template{}
	if in.KeyUsages == nil {
		in.KeyUsages = defaultKeyUsages
	}
	if err := in.apply(&t); err != nil {
		return Template{}, err
	}
	ca, err := s.ca(ctx, actor, strings.TrimSpace(*in.CAID), authz.ActRead, authz.SubCertificateAuthorities)
	if err != nil {
		return Template{}, err
	}
	if err := s.check(ctx, actor, ca.ProjectID, authz.ActCreate, authz.SubCertificateTemplates, func() error { return caNotFound(ca.ID) }, true); err != nil {
		return Template{}, err
	}
	ts, err := s.store.Templates(ctx, ca.ProjectID)
	if err != nil {
		return Template{}, err
	}
	if len(ts) >= MaxTemplates {
		return Template{}, TooManyTemplates(len(ts))
	}
	now := s.clock()
	t.ID, t.ProjectID, t.CAID, t.CreatedAt, t.UpdatedAt = uuid.NewString(), ca.ProjectID, ca.ID, now, now
	err = s.store.CreateTemplate(ctx, t, templateEvent(actor, "create-certificate-template", t))
	if errs.Is(err, errs.Conflict) {
		return Template{}, duplicateTemplate(t.Name)
	}
	return t, err
}

// GetTemplate returns a template.
func (s *Service) GetTemplate(ctx context.Context, actor authz.Actor, id string) (Template, error) {
	return s.template(ctx, actor, id, authz.ActRead)
}

// ListTemplates returns a project's templates by name.
func (s *Service) ListTemplates(ctx context.Context, actor authz.Actor, projectID string) ([]Template, error) {
	notFound := func() error { return errs.NotFoundf("Project with ID '%s' not found", projectID) }
	if _, err := uuid.Parse(projectID); err != nil {
		return nil, notFound()
	}
	if err := s.check(ctx, actor, projectID, authz.ActRead, authz.SubCertificateTemplates, notFound, false); err != nil {
		return nil, err
	}
	return s.store.Templates(ctx, projectID)
}

// UpdateTemplate changes a template; a new CA must be of the same project.
// A change that commits first is read again, not undone.
func (s *Service) UpdateTemplate(ctx context.Context, actor authz.Actor, id string, in TemplateInput) (Template, error) {
	return project.RetryStale(ctx, "certificate template", func() (Template, error) { return s.updateTemplate(ctx, actor, id, in) })
}

func (s *Service) updateTemplate(ctx context.Context, actor authz.Actor, id string, in TemplateInput) (Template, error) {
	t, err := s.template(ctx, actor, id, authz.ActEdit)
	if err != nil {
		return Template{}, err
	}
	if err := in.apply(&t); err != nil {
		return Template{}, err
	}
	if in.CAID != nil && strings.TrimSpace(*in.CAID) != t.CAID {
		ca, err := s.ca(ctx, actor, strings.TrimSpace(*in.CAID), authz.ActRead, authz.SubCertificateAuthorities)
		if err != nil {
			return Template{}, err
		}
		if ca.ProjectID != t.ProjectID {
			return Template{}, caNotFound(ca.ID)
		}
		t.CAID = ca.ID
	}
	prev := t.UpdatedAt
	t.UpdatedAt = project.NextStamp(s.clock(), prev)
	err = s.store.UpdateTemplate(ctx, t, prev, templateEvent(actor, "update-certificate-template", t))
	if errs.Is(err, errs.Conflict) {
		return Template{}, duplicateTemplate(t.Name)
	}
	return t, err
}

// DeleteTemplate deletes a template; certificates issued under it stay.
func (s *Service) DeleteTemplate(ctx context.Context, actor authz.Actor, id string) (Template, error) {
	t, err := s.template(ctx, actor, id, authz.ActDelete)
	if err != nil {
		return Template{}, err
	}
	return t, s.store.DeleteTemplate(ctx, t.ID, templateEvent(actor, "delete-certificate-template", t))
}
