package main

// webComponents returns the serve components for the web view ([web]).
func webComponents(env *serveEnv) ([]component, error) {
	return nil, nil
}
