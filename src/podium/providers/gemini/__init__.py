"""Google's Gemini API (generateContent / streamGenerateContent)."""
