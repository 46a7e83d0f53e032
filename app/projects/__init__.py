"""Projects: creation from templates, the gallery, trash, export/import, members, history."""
