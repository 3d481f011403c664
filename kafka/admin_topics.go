package kafka

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

func isKerr(err error, target **kerr.Error) bool { return errors.As(err, target) }

// errMessage returns the text for a response's error_message field.
func errMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
