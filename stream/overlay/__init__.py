"""The picture a person sees: drawing results over a frame, each camera's latest annotated frame, the kiosk windows."""
