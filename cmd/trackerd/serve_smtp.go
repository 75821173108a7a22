package main

// smtpComponents returns the serve components for the SMTP/LMTP listener ([smtp]).
func smtpComponents(env *serveEnv) ([]component, error) {
	return nil, nil
}
