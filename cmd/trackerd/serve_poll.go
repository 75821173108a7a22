package main

// pollComponents returns the serve components for the [[poll]] mailboxes.
func pollComponents(env *serveEnv) ([]component, error) {
	return nil, nil
}
