package main

import (
	"context"

	"github.com/trackerd/trackerd/mailgw"
)

// smtpComponents returns the serve components for the SMTP/LMTP listener
// ([smtp]); none when smtp.listen is "". The socket is opened here, so
// that "trackerd ready" means it is listening and a port already taken
// stops serve at once.
func smtpComponents(env *serveEnv) ([]component, error) {
	if env.cfg.SMTP.Listen == "" {
		return nil, nil
	}
	l, err := mailgw.NewListener(env.gw, env.log)
	if err != nil {
		return nil, err
	}
	ln, err := l.Listen()
	if err != nil {
		return nil, err
	}
	return []component{{name: "smtp", run: func(ctx context.Context) error { return l.Serve(ctx, ln) }}}, nil
}
