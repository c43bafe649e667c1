// Empty: this package exists only to build the plugins of its dependencies.
