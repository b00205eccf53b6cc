"""The one exception type that every entry point turns into a clear message."""


class EmotionCoreError(ValueError):
    """A problem with the user's input, data or model folder, worded so they can fix it.

    It subclasses ValueError so callers that only know the standard library still catch it.
    The CLI prints it as one line, Gradio shows it as `gr.Error`, Flask as a 4xx response.
    """
