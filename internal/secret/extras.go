package secret

import (
	"slices"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Limits on a secret's metadata and reminder.
const (
	MaxMetadataEntries    = 100
	MaxMetadataKeyBytes   = 128
	MaxMetadataValueBytes = 4 << 10
	MaxReminderDays       = 365
	MaxReminderNoteBytes  = 1 << 10
	MaxReminderRecipients = 100
)

// checkMetadata validates metadata entries: keys 1 to 128 bytes and unique,
// values at most 4 KiB, both valid UTF-8.
func checkMetadata(md []MetaEntry) error {
	if len(md) > MaxMetadataEntries {
		return invalidField("secretMetadata", "Secret metadata may hold at most %d entries", MaxMetadataEntries)
	}
	seen := make(map[string]bool, len(md))
	for _, m := range md {
		if m.Key == "" || len(m.Key) > MaxMetadataKeyBytes || !utf8.ValidString(m.Key) {
			return invalidField("secretMetadata", "Secret metadata keys must be 1 to %d bytes of UTF-8", MaxMetadataKeyBytes)
		}
		if len(m.Value) > MaxMetadataValueBytes || !utf8.ValidString(m.Value) {
			return invalidField("secretMetadata", "Secret metadata value of '%s' must be at most %d bytes of UTF-8", m.Key, MaxMetadataValueBytes)
		}
		if seen[m.Key] {
			return invalidField("secretMetadata", "Secret metadata key '%s' appears twice", m.Key)
		}
		seen[m.Key] = true
	}
	return nil
}

func checkReminderDays(d int) error {
	if d < 0 || d > MaxReminderDays {
		return invalidField("secretReminderRepeatDays", "secretReminderRepeatDays must be 1 to %d, or 0 or null for no reminder", MaxReminderDays)
	}
	return nil
}

func checkReminderNote(n string) error {
	if len(n) > MaxReminderNoteBytes || !utf8.ValidString(n) {
		return invalidField("secretReminderNote", "secretReminderNote must be at most %d bytes of UTF-8", MaxReminderNoteBytes)
	}
	return nil
}

// cleanRecipients validates reminder recipients (user ids) and drops repeats.
func cleanRecipients(ids []string) ([]string, error) {
	if len(ids) > MaxReminderRecipients {
		return nil, invalidField("secretReminderRecipients", "secretReminderRecipients may name at most %d users", MaxReminderRecipients)
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		u, err := uuid.Parse(id)
		if err != nil {
			return nil, invalidField("secretReminderRecipients", "secretReminderRecipients must be user ids")
		}
		if s := u.String(); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// applyExtras sets sec's metadata and reminder from the non-nil fields of c,
// validating each.
func applyExtras(sec *Secret, c Extras) error {
	if c.Metadata != nil {
		if err := checkMetadata(*c.Metadata); err != nil {
			return err
		}
		sec.Metadata = slices.Clone(*c.Metadata)
		if sec.Metadata == nil {
			sec.Metadata = []MetaEntry{}
		}
	}
	if c.ReminderRepeatDays != nil {
		if err := checkReminderDays(*c.ReminderRepeatDays); err != nil {
			return err
		}
		sec.Reminder.RepeatDays = *c.ReminderRepeatDays
	}
	if c.ReminderNote != nil {
		if err := checkReminderNote(*c.ReminderNote); err != nil {
			return err
		}
		sec.Reminder.Note = *c.ReminderNote
	}
	if c.ReminderRecipients != nil {
		r, err := cleanRecipients(*c.ReminderRecipients)
		if err != nil {
			return err
		}
		sec.Reminder.Recipients = r
	}
	return nil
}

// Extras are a write's metadata and reminder; nil fields are absent (on an
// update: unchanged). A repeat interval of 0 removes the reminder.
type Extras struct {
	Metadata           *[]MetaEntry
	ReminderRepeatDays *int
	ReminderNote       *string
	ReminderRecipients *[]string
}
